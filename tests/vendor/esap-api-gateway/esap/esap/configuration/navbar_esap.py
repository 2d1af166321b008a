frontend_basename = "esap-gui"

logo = "https://alta.astron.nl/alta-static/images/esap/esap_logo.png"

# definition of the navigation bar
nav1 = {'title': 'Archives', 'route': '/archives'}
nav2 = {'title': 'Query', 'route': '/vo-query'}
nav3 = {'title': 'Rucio', 'route': '/rucio'}
nav4 = {'title': 'Interactive Analysis', 'route': '/interactive'}
nav5 = {'title': 'Batch Analysis', 'route': '/batch'}
nav6 = {'title': 'SAMP', 'route': '/samp'}
navbar = [nav1, nav2, nav3, nav4, nav5, nav6]
